// The ui-camera widget's bundle (resources/ui-camera.umd.js): Dashboard 2 loads it and reads
// window["ui-camera"].UICamera (package.json "node-red-dashboard-2" names both).
export { default as UICamera } from "./UICamera.vue";
