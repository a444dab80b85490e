"""The daemon process: wiring of the services and the process around them."""
