//! Host facts for `vimana init`: CPU, memory, disk, a real KVM guest run, TUN, vsock, cgroup v2, hypervisors.
