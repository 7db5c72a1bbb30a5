"""The JT/T 808 terminal protocol (2013 and 2019 headers): framing, messages and the TCP gateway."""
