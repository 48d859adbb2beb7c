"""Entry points: the command line (`cli`), the runner of the suites (`runner`), the pytest
plugin (`plugin`) and the hypothesis profiles (`profiles`)."""
