//! Fuzzes the listen-address grammar of `ListenStream=` and friends. Round
//! trip: an address that parses prints (systemd's normalised form) to text
//! that parses back to the same address, for every address whose print form
//! needs no C escapes.

#![no_main]

use flint::unit::value::address::SocketAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(addr) = s.parse::<SocketAddress>() else {
        return;
    };
    let printed = addr.to_string();
    let escaped = match &addr {
        SocketAddress::Unix(p) => p.to_str() != Some(printed.as_str()),
        SocketAddress::Abstract(n) => n.as_slice() != &printed.as_bytes()[1..],
        SocketAddress::Inet(_) | SocketAddress::Vsock { .. } => false,
    };
    if escaped {
        return;
    }
    match printed.parse::<SocketAddress>() {
        Ok(again) => assert_eq!(again, addr, "{s:?} printed as {printed:?}"),
        Err(e) => panic!("{s:?} printed as {printed:?}, which does not parse: {e}"),
    }
});
