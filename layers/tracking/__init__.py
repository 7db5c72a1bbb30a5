"""Live tracking: vehicle terminals (JT/T 808) and inspectors' phones, their positions and reads."""
