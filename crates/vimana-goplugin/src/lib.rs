//! HashiCorp go-plugin gRPC protocol: host side (launch, handshake, AutoMTLS, reattach, stdio, shutdown) and plugin side (serve).
