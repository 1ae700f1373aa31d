"""`paddlehot bench`: load generation, statistics, reports and plots."""
