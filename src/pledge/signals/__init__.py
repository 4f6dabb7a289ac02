"""Browser privacy signals: Global Privacy Control (Sec-GPC) and Do Not Track."""
