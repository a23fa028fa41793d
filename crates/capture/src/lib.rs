//! Packet capture and TCP analysis (issue: sockscope capture).
