"""The conformance suites (pytest). A package, so that the installed copy (conformance.suites)
runs with `pytest --pyargs conformance.suites` and sibling suites import each other relatively."""
