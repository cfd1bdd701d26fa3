// Placeholder: the chat page lands with the browser work.
