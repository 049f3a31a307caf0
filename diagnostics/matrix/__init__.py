"""The troubleshooting matrix: named rules that turn a router's facts into verdicts."""
