"""Package data, not code: the C sources edgert compiles into firmware images and runners.
Installed as ``edgert.firmware``; edgert.package_data finds it."""
