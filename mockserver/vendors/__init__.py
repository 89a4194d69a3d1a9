"""One package per emulated vendor; the core discovers them, it never names them."""
