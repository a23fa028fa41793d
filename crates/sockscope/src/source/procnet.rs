//! Parsers for /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix}.
