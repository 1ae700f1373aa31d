"""Export a paddle.nn.Layer for inference: trace, save, validate against eager, package."""
