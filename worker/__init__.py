"""WhatsApp and SMS workers: take rows from the queue and send them."""
