"""HTTP serving: the Open Inference Protocol v2 (as Triton and KServe speak it) over the core Manager."""
