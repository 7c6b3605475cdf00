"""harbench hardware target for NVIDIA Jetson AGX Xavier with its power modes."""
