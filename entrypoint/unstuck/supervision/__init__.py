"""The container's supervision: supervisord's config and launcher, and the listener that lifts FATAL."""
