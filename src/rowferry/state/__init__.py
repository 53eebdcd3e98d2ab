"""What rowferry keeps in the target database: progress, leases, quarantine and the cursor."""
