//! The one printer: an instruction as the Linux verifier log prints it. (In progress.)
