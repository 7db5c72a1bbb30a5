"""The bulletins (通报) a bureau circulates: the monthly case bulletin and the quarterly dust-control
bulletin, gathered from the same queries as the statistics API and rendered as DOCX or PDF."""
