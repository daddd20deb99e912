// The console's entry point. Who does what:
//   session.js     sign-in, the one sign-out, what runs while signed in
//   controller.js  which view is shown, drawing it, updates from store topics
//   shell.js       the frame: sign-in form, top bar, footer
//   views.js       the views and the topics each subscribes to
//   store.js       every API call; data for the views, published by topic
//   live.js        the live stream of transitions;  timers.js  periodic work
//   keys.js        keyboard shortcuts;  severity.js  the one severity table
import { installKeys } from "./keys.js";
import { start } from "./session.js";

installKeys();
start();
