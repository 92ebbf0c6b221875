//! sensor (to be written)
