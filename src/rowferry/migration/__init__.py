"""What a migration is: its definition, its output shapes, its transform and its file."""
