//! Join sockets to owners.
