"""zhijian (质检): real-time quality monitoring of live customer-service chats."""

__version__ = "0.1.0"
