"""What every service's use cases share between the domain's rules and the adapters."""
