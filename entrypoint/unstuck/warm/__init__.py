"""The warm process and its forks (spare, app layer): what is imported ahead, and how a fork is kept fast."""
