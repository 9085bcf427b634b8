"""Package data, not code: the target files (``<name>.toml``) and board profiles
(``boards/``) that edgert.targets reads. Installed as ``edgert.target_files``."""
