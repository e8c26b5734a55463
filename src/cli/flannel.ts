/** The flannel CNI plugin's entry point. */
import { main } from "./flannel_main.js";

void main();
