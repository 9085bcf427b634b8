"""Target backends: how generated C becomes something that runs. One module per kind."""
