export const warm = 1;
