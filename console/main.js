import { render } from 'preact';
import { html } from './html.js';
import { App } from './app.js';

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
