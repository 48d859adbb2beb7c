"""flax: linen and nnx cells and their bench builders."""
