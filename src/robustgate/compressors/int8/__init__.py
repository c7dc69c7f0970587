"""The int8 quantization paths behind the ``ptq`` step: torch.ao FX, eager and dynamic, and torchao PT2E.

Each path turns a CPU copy of an fp32 network into an :class:`~robustgate.compressors.int8.engine.Int8Net`
that runs real int8 kernels and knows what to cache to rebuild itself.
"""
