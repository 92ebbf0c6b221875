use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// A socket address as a syscall saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum SockAddr {
    Inet {
        ip: IpAddr,
        port: u16,
    },
    Inet6 {
        ip: IpAddr,
        port: u16,
    },
    Unix {
        path: String,
    },
    /// Any other family, by number (e.g. 16 = AF_NETLINK, 17 = AF_PACKET).
    Other {
        number: u16,
    },
}

impl SockAddr {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            SockAddr::Inet { ip, .. } | SockAddr::Inet6 { ip, .. } => Some(*ip),
            _ => None,
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            SockAddr::Inet { port, .. } | SockAddr::Inet6 { port, .. } => Some(*port),
            _ => None,
        }
    }
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Inet { ip, port } => write!(f, "{ip}:{port}"),
            SockAddr::Inet6 { ip, port } => write!(f, "[{ip}]:{port}"),
            SockAddr::Unix { path } => write!(f, "unix:{path}"),
            SockAddr::Other { number } => write!(f, "family{number}"),
        }
    }
}
