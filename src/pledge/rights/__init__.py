"""Rights requests: intake, verification, statutory clocks and fulfilment of every type."""
