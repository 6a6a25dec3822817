"""modelzoo: a pure-PyTorch hybrid Mamba-2/attention MoE language model (Nemotron-H style) with NVFP4 emulation.

Public surface: ``modelzoo.config`` (recipes, overrides, patch validation), ``modelzoo.model.HybridLM``,
``modelzoo.fp4.fake_quantize``, ``modelzoo.export`` (transformers NemotronH interchange).
Never imports the web platform (django, celery, ideas, experiments, compute).
"""
