"""dealersync: integration middleware for 4S dealerships."""
__version__ = "0.1.0"
