"""The dust-site domain: work orders rectified on time or late."""
