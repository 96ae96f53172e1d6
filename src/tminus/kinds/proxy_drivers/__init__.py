"""Proxy drivers for the `proxy` kind: one module per proxy (nginx, haproxy, generic).

Each module defines `Driver` following `base.ProxyDriver`; the kind picks it by `driver:` name.
"""
