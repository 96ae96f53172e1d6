export const shell = "spa";
