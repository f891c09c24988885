"""The gateway's own endpoints, and the catch-all that forwards everything else."""
