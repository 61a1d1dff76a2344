//! The core: one Action door, the supervisor, the Driver trait each workload kind implements, and merged logs.
