"""What a fresh install ships to try things with: the dental receptionist and its backend."""
