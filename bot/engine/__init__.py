"""The platform-neutral engine: packs, retrieval, prompt, chat model and reply post-processing."""
