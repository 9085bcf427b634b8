"""Many boards at once, through labgrid (https://labgrid.readthedocs.io): a coordinator knows
the places (boards) and their resources, exporters publish the boards' serial ports, and
edgert acquires places, reaches each board over its place's serial port and releases them.

    coordinator.py  a synchronous client of a labgrid coordinator (places, tags, acquire, release)
    places.py       acquire up to N places matching tags (waiting for busy ones), their links
    serve.py        `edgert farm serve`: emulated boards exported as labgrid places, to try a
                    farm (and test one) without hardware

Sharding the samples over the boards is edgert.validate.on_device's (a board that drops out
has its sample redone by another).
"""
