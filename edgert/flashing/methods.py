"""The flash methods, one module each (see edgert.flashing): a leaf, so that board profiles
(edgert.targets) are checked against it without importing what flashes."""

#: flash method (a board profile's [flash] methods) -> the module doing it
FLASHERS = {
    "qemu": "edgert.flashing.qemu",
    "serial-stm32": "edgert.flashing.serial_stm32",
    "smp": "edgert.flashing.smp",
    "probe": "edgert.flashing.probe",
    "none": "edgert.flashing.none",
}
