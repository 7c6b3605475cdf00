"""harbench hardware targets for Raspberry Pi 4 and 5 (estimate with the roofline, or measure over SSH)."""
