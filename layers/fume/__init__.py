"""Online fume monitoring (油烟在线监控): restaurants' readings, their limits and statistics."""
