//! System tests: boot the real kernel in QEMU and drive it as a person
//! would. Empty until the kernel issue adds the first of them.
