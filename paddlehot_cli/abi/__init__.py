"""abi-check: ELF facts (pyelftools), policies as data, baseline comparison. Never imports paddle.

Entry point for other code: `paddlehot_cli.abi.runner.run_abi_check(...) -> Report`.
"""
