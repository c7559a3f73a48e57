/**
 * Every message shape camrelay's nodes send and read, as writer/reader pairs: one file per shape. A node
 * builds what it sends with a writer here and reads what it receives with the matching reader, so the two
 * sides of a wire cannot drift apart.
 */
export * from "./frame";
export * from "./mp4";
export * from "./recording";
export * from "./state";
export * from "./stats";
export * from "./viewer";
